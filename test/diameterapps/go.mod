module github.com/wirescope/wirescope/test/diameterapps

go 1.26.0
