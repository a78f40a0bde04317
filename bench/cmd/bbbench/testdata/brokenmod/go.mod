module bbbroken

go 1.26.0
