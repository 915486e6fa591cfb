from sweeps.entry import main

main()
