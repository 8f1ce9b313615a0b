# Run with: twistd -ny gocast.tac
#
# The same service `twistd gocast` builds, on the config file the usual
# lookup finds: $GOCAST_CONFIG, else ./gocast.vibe, else
# /etc/gocast/gocast.vibe, else the built-in defaults. A config error exits
# with status 78 and every problem on stderr.
from twisted.application import service

from gocast.tap import load, makeService

application = service.Application("gocast")
makeService({"loaded": load(None)}).setServiceParent(application)
