#!/bin/sh
# The upstream image's variables: the default user and its password.
set -eu
mkdir -p /etc/rabbitmq/conf.d
cat >/etc/rabbitmq/conf.d/10-longshore.conf <<CONF
default_user = ${RABBITMQ_DEFAULT_USER:-guest}
default_pass = ${RABBITMQ_DEFAULT_PASS:-guest}
loopback_users = none
CONF
chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /etc/rabbitmq/conf.d
exec su rabbitmq -s /bin/sh -c "exec rabbitmq-server"
