print("placeholder: see bench/run.sh")
