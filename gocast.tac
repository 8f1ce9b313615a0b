# Run with: twistd -ny gocast.tac
#
# The same service `twistd gocast` builds, on the config file the usual
# lookup finds: $GOCAST_CONFIG, else ./gocast.vibe, else
# /etc/gocast/gocast.vibe, else the built-in defaults. A config error exits
# with status 78 and every problem on stderr. Logs go where twistd's
# options say (twistd.log when daemonized) unless the config names a file.
import sys

from twisted.application import service

from gocast.tap import load, makeService, twistd_command_line

application = service.Application("gocast")
makeService({"loaded": load(None), "twistd": twistd_command_line(sys.argv)}).setServiceParent(application)
