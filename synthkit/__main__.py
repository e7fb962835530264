from synthkit.cli import main

main()
