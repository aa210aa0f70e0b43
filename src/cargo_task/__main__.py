import sys

from cargo_task.cli import main

sys.exit(main())
