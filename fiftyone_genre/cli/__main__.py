import sys

from fiftyone_genre.cli import main

sys.exit(main())
