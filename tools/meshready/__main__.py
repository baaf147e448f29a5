import sys

from meshready.entry import main

sys.exit(main())
