module example.com/kubernaut

go 1.24
