module atelier/spawner

go 1.22
