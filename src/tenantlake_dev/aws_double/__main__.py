import sys

from tenantlake_dev.aws_double.server import main

sys.exit(main())
