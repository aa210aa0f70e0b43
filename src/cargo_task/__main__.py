from cargo_task.cli import console_main

console_main()
