module gotrace.test/inlines

go 1.19
