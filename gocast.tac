# Run with: twistd -ny gocast.tac
#
# Loads the config file named by $GOCAST_CONFIG, else ./gocast.vibe when it
# exists, else runs on the built-in defaults; the service is the same one
# `twistd gocast` builds.
import os

from twisted.application import service

from gocast.tap import load, makeService

_path = os.environ.get("GOCAST_CONFIG") or ("gocast.vibe" if os.path.exists("gocast.vibe") else None)

application = service.Application("gocast")
makeService({"loaded": load(_path)}).setServiceParent(application)
