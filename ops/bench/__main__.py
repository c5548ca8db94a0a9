import sys

from ops.bench import main

sys.exit(main())
