from one_store import Crons

from .tasks import sweep

crons = Crons()
crons.interval("sweep stale tasks", {"minutes": 5}, sweep)
crons.cron("hourly tally", "0 * * * *", "tasks:bump", {"name": "hourly"})
