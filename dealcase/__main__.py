import sys

from dealcase.cli import main

sys.exit(main())
