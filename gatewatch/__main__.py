from gatewatch.cli import main

main()
