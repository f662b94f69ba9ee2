module gotrace.test/sample

go 1.19
