#!/bin/sh
# Registers lite-raft with AIX's System Resource Controller and starts it at boot from
# /etc/inittab: sh install.sh [PACKAGE...] (as root). The agent is the subsystem
# lite_raft; each package's monitor lite_raft_pkg_NAME (stopsrc sends SIGTERM: an active
# monitor stops its package first). Edit DIR and USER. UNTESTED on AIX.
set -eu
DIR=/opt/lite-raft
USER=lite-raft
uid=$(id -u "$USER")
# -S: signals stop it (SIGTERM normal, SIGKILL forced); -R: restart if it dies;
# -o/-e: its output (the agent logs where conf/log says)
mkssys -s lite_raft -p "$DIR/lite-raft" -a "--dir $DIR agent --foreground" -u "$uid" \
	-S -n 15 -f 9 -R -Q -o /dev/null -e "$DIR/message-log/lite-raft-agent.err"
mkitab "liteRaft:2:once:/usr/bin/startsrc -s lite_raft >/dev/console 2>&1"
for p in "$@"; do
	mkssys -s "lite_raft_pkg_$p" -p "$DIR/pkg/lite-raft" -a "--dir $DIR/pkg pkg monitor $p" -u "$uid" \
		-S -n 15 -f 9 -R -Q -o "$DIR/pkg/message-log/pkg-$p.log" -e "$DIR/pkg/message-log/pkg-$p.log"
	mkitab "lrPkg$p:2:once:/usr/bin/startsrc -s lite_raft_pkg_$p >/dev/console 2>&1"
done
echo "registered: lssrc -s lite_raft; startsrc -s lite_raft"
