"""A real SMTP server for the alert tests (Debian's python3-aiosmtpd).

Usage: smtp_sink.py PORT. Listens on 127.0.0.1:PORT, prints "ready" once it accepts
connections, then one JSON line per message it accepts: {"from", "to", "data"}. Stops when
its standard input closes or it is killed.
"""

import json
import sys

from aiosmtpd.controller import Controller


class Sink:
    async def handle_DATA(self, server, session, envelope):
        line = {
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "data": envelope.content.decode("utf-8", "replace"),
        }
        print(json.dumps(line), flush=True)
        return "250 OK"


def main():
    port = int(sys.argv[1])
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        # The test holds our standard input; when it goes, so do we.
        while sys.stdin.read(1):
            pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
