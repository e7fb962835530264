from synthkit.interface.cli import main

main()
