from platen.ctl.main import main

main()
