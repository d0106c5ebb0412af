from dilbench.cli import main

main()
