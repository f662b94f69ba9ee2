module gotrace.test/dwarfdump

go 1.19
