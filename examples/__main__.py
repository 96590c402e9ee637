"""``python -m examples``: the main example (GitHub issue triage) end to end.

See :mod:`examples._demo`. Options: ``--live --repo OWNER/NAME --issue N``, ``--timeout S``.
"""

import sys

from examples._demo import main

sys.exit(main(sys.argv[1:]))
