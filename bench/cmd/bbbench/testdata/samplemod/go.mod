module bbsample

go 1.26.0
