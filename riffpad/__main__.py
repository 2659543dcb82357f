from riffpad.cli import main

main()
