import sys

from ._standalone import main

sys.exit(main())
