module disasmsample

go 1.19
