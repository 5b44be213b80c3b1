module gantry.example/go-step

go 1.21
