from streams.commands.main import main

main()
