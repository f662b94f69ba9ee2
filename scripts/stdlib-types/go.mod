module gotrace.test/stdlibtypes

go 1.19
