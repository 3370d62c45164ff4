"""Running DigitDraw as a cluster on one machine or a few: Debian's PostgreSQL server, app replicas, HAProxy
in front of them, and training workers, started and stopped by ``python -m digitdraw cluster``.

- ``postgres`` starts and stops a PostgreSQL server in a folder of its own (the tests use it too);
- ``proxy`` writes HAProxy's configuration: sticky sessions by cookie, WebSockets, health checks;
- ``cluster`` starts the whole topology, remembers its processes in the folder, and stops them.

The layer sits above the queue and the store, whose schema it creates once before any replica
opens the database, and below the command line.
"""
