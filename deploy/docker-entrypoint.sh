#!/bin/sh
# docker-entrypoint.sh: one-time set-up of the dev container at every boot.
#
# Runs as root from docker-entrypoint.service (Type=oneshot, RemainAfterExit=yes),
# before code-server, difit and unitdeck. With systemd as PID 1 this script no longer
# starts anything: it prepares the container and exits 0.
#
#   1. passes selected variables of `docker run -e` / compose `environment:` to the
#      units (systemd does not hand its own environment to services);
#   2. fixes ownership of the developer's home, without touching bind mounts;
#   3. lets the developer use a bind-mounted Docker socket.
#
# Every step is idempotent: running the script again changes nothing. A command that
# fails logs its error to the journal and the script goes on and exits 0, so that one
# broken step does not keep code-server (which Requires= this unit) from starting.
set -eu

log() { printf 'docker-entrypoint: %s\n' "$*"; }
warn() { printf 'docker-entrypoint: warning: %s\n' "$*" >&2; }

# The developer account is chosen at build time (Dockerfile ARG UNAME).
DEV_USER=dev
if [ -r /etc/default/devcontainer ]; then
    # shellcheck disable=SC1091
    . /etc/default/devcontainer
fi
if ! DEV_PASSWD=$(getent passwd "$DEV_USER"); then
    warn "user '$DEV_USER' does not exist; nothing to do"
    exit 0
fi
DEV_UID=$(printf '%s\n' "$DEV_PASSWD" | cut -d: -f3)
DEV_GID=$(printf '%s\n' "$DEV_PASSWD" | cut -d: -f4)
DEV_HOME=$(printf '%s\n' "$DEV_PASSWD" | cut -d: -f6)

# --- 1. Container environment -> unit environment files -----------------------------

# pid1_env NAME: print the value NAME had in the container's environment (the one
# docker gave to PID 1); fail when it was not set. Values cannot contain newlines.
pid1_env() {
    [ -r /proc/1/environ ] || return 1
    tr '\0' '\n' </proc/1/environ | grep -q "^$1=" || return 1
    tr '\0' '\n' </proc/1/environ | sed -n "s/^$1=//p" | head -n 1
}

# env_quote VALUE: VALUE as a double-quoted string for a systemd EnvironmentFile=
# (inside double quotes systemd honours the backslash escapes \\ \" \` \$).
env_quote() {
    printf '"%s"' "$(printf '%s' "$1" | sed 's/[\\"`$]/\\&/g')"
}

# install_env_file PATH CONTENT: replace PATH atomically with CONTENT (root, 0600);
# remove it when CONTENT is empty. Writes nothing when the content is unchanged.
install_env_file() {
    if [ -z "$2" ]; then
        if [ -e "$1" ]; then rm -f -- "$1" && log "removed $1"; fi
        return 0
    fi
    if [ -f "$1" ] && [ "$(cat -- "$1")" = "$2" ]; then
        return 0
    fi
    mkdir -p -- "$(dirname -- "$1")"
    tmp=$(mktemp "$1.XXXXXX")
    chmod 0600 "$tmp"
    printf '%s\n' "$2" >"$tmp"
    mv -f -- "$tmp" "$1"
    log "wrote $1"
}

bridge_environment() {
    # code-server reads its login password from $PASSWORD. Without it, code-server
    # generates one into ~/.config/code-server/config.yaml on first start.
    content=
    if value=$(pid1_env CODE_SERVER_PASSWORD) && [ -n "$value" ]; then
        content="PASSWORD=$(env_quote "$value")"
    fi
    install_env_file /etc/code-server/env "$content"

    # unitdeck: a plain password, or an argon2 hash from `unitdeck hash-password`.
    # Without either, unitdeck writes /var/lib/unitdeck/initial-password. The host names
    # it answers to, TLS, the session idle time and the base path (behind code-server's
    # /absproxy/8035/) come the same way.
    content=
    for name in UNITDECK_PASSWORD UNITDECK_PASSWORD_HASH UNITDECK_ALLOWED_HOSTS \
        UNITDECK_TLS UNITDECK_TLS_CERT UNITDECK_TLS_KEY UNITDECK_SESSION_IDLE \
        UNITDECK_BASE_PATH; do
        if value=$(pid1_env "$name") && [ -n "$value" ]; then
            content="${content:+$content
}$name=$(env_quote "$value")"
        fi
    done
    install_env_file /etc/unitdeck/env "$content"

    # difit shows the repository bind-mounted at ~/$REPO_NAME (compose sets REPO_NAME).
    content=
    if value=$(pid1_env REPO_NAME) && [ -n "$value" ]; then
        content="DIFIT_REPO=$(env_quote "$DEV_HOME/$value")"
    fi
    install_env_file /etc/default/difit "$content"
}

# --- 2. Ownership of the developer's home --------------------------------------------

# The home directory itself, ~/repos (the named volume: a new volume is created
# root-owned when the image did not provide the directory) and the per-user state
# directories the tools write to. find -xdev never descends into another mount, so the
# bind-mounted repository keeps the host's ownership.
fix_ownership() {
    for dir in "$DEV_HOME" "$DEV_HOME/repos"; do
        [ -d "$dir" ] || continue
        owner=$(stat -c '%u:%g' -- "$dir")
        if [ "$owner" != "$DEV_UID:$DEV_GID" ]; then
            chown "$DEV_UID:$DEV_GID" -- "$dir"
            log "chown $DEV_UID:$DEV_GID $dir (was $owner)"
        fi
    done
    for dir in "$DEV_HOME/.config" "$DEV_HOME/.local" "$DEV_HOME/.cache" "$DEV_HOME/.npm"; do
        [ -d "$dir" ] || continue
        find "$dir" -xdev \( ! -user "$DEV_UID" -o ! -group "$DEV_GID" \) \
            -exec chown -h "$DEV_UID:$DEV_GID" -- {} +
    done
}

# --- 3. Docker socket ----------------------------------------------------------------

# When the host's Docker socket is bind-mounted, give the developer the socket's group:
# reuse the group that already has that GID, or create "docker-host" with it. A socket
# owned by GID 0 is left alone (adding the developer to root's group is not a fix);
# use `sudo docker` then.
setup_docker_socket() {
    sock=/var/run/docker.sock
    [ -S "$sock" ] || return 0
    gid=$(stat -c '%g' -- "$sock")
    if [ "$gid" = 0 ]; then
        warn "$sock belongs to GID 0; not adding $DEV_USER to group root (use sudo docker)"
        return 0
    fi
    if group=$(getent group "$gid"); then
        name=$(printf '%s\n' "$group" | cut -d: -f1)
    else
        name=docker-host
        if getent group "$name" >/dev/null; then
            groupmod --gid "$gid" "$name"
            log "group $name now has GID $gid (the GID of $sock)"
        else
            groupadd --gid "$gid" "$name"
            log "created group $name with GID $gid (the GID of $sock)"
        fi
    fi
    if id -nG "$DEV_USER" | tr ' ' '\n' | grep -qx "$name"; then
        return 0
    fi
    usermod -aG "$name" "$DEV_USER"
    log "added $DEV_USER to group $name for $sock"
}

bridge_environment || warn "passing the container environment to the units failed"
fix_ownership || warn "fixing ownership under $DEV_HOME failed"
setup_docker_socket || warn "setting up access to the Docker socket failed"
log "done"
exit 0
