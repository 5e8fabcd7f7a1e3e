"""Discord permission bits and the channel permission algorithm (base, then overwrites), as Discord computes it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.support.state import Channel, Guild, Member, World

CREATE_INSTANT_INVITE = 1 << 0
KICK_MEMBERS = 1 << 1
BAN_MEMBERS = 1 << 2
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_EXTERNAL_EMOJIS = 1 << 18
CHANGE_NICKNAME = 1 << 26
MANAGE_ROLES = 1 << 28
USE_APPLICATION_COMMANDS = 1 << 31
MODERATE_MEMBERS = 1 << 40
SEND_MESSAGES_IN_THREADS = 1 << 38

ALL = (1 << 51) - 1

#: What @everyone gets in a new server (the common subset).
DEFAULT_EVERYONE = (
    CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | MENTION_EVERYONE
    | USE_EXTERNAL_EMOJIS
    | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
)

#: What an image bot typically asks for in its invite link.
DEFAULT_BOT = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | ADD_REACTIONS
    | USE_EXTERNAL_EMOJIS
    | SEND_MESSAGES_IN_THREADS
)


def base_permissions(world: World, guild: Guild, member: Member) -> int:
    """Guild-level permissions: owner and administrators get everything."""
    if member.user_id == guild.owner_id:
        return ALL
    perms = world.roles[guild.id].permissions  # @everyone shares the guild's id
    for role_id in member.role_ids:
        perms |= world.roles[role_id].permissions
    return ALL if perms & ADMINISTRATOR else perms


def channel_permissions(world: World, guild: Guild, channel: Channel, member: Member) -> int:
    """Permissions in a channel: base, then @everyone, role and member overwrites, in Discord's order."""
    perms = base_permissions(world, guild, member)
    if perms & ADMINISTRATOR or member.user_id == guild.owner_id:
        return ALL
    overwrites = {(o.type, o.id): o for o in channel.overwrites}
    everyone = overwrites.get((0, guild.id))
    if everyone:
        perms = (perms & ~everyone.deny) | everyone.allow
    allow = deny = 0
    for role_id in member.role_ids:
        o = overwrites.get((0, role_id))
        if o:
            allow |= o.allow
            deny |= o.deny
    perms = (perms & ~deny) | allow
    own = overwrites.get((1, member.user_id))
    if own:
        perms = (perms & ~own.deny) | own.allow
    if not perms & VIEW_CHANNEL:
        return 0
    return perms
