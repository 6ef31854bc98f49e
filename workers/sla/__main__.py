"""``python -m complaint_stream.workers.sla``: run the SLA worker."""

import sys

from complaint_stream.settings import load_settings
from complaint_stream.workers.registry import WORKERS
from complaint_stream.workers.runtime import run_worker

sys.exit(run_worker(WORKERS["sla"], load_settings()))
