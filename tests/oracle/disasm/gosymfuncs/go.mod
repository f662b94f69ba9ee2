module gosymfuncs

go 1.19
