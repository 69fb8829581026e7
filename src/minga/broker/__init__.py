"""The embedded NATS-protocol broker: nats-py (and any NATS client) talks to it unchanged.

The pieces, from the wire up:

- :class:`Parser` turns a client's bytes into frames (:class:`Pub`, :class:`Sub`...) with no sockets;
  :func:`encode_headers` / :func:`decode_headers` handle NATS header blocks.
- :func:`is_valid_subject`, :func:`subject_matches` and :class:`SubjectTrie` route subjects with
  ``*`` and ``>`` wildcards.
- :class:`Broker` serves clients over asyncio, with auth (a token, a user, or :class:`User` entries
  each with its :class:`Permissions`), limits, TLS, monitoring and a lame-duck shutdown;
  extensions (:class:`BrokerExtension`) run inside it as internal clients and receive
  :class:`Delivery` objects.
"""

from minga.broker._api import BrokerExtension, Delivery
from minga.broker._conffile import FileConfig, load_config_file, parse_conf, render_conf
from minga.broker._config import AuthConfig, BrokerConfig, BrokerTimeouts, TLSConfig
from minga.broker._headers import HeaderBlock, decode_headers, encode_headers
from minga.broker._permissions import Permissions, SubjectPermission, User
from minga.broker._protocol import (
    Connect,
    Frame,
    Invalid,
    Parser,
    Ping,
    Pong,
    Pub,
    Sub,
    Unsub,
)
from minga.broker._server import Broker
from minga.broker._subjects import is_literal_subject, is_valid_subject, subject_matches
from minga.broker._trie import Match, SubjectTrie

__all__ = [
    "AuthConfig",
    "Broker",
    "BrokerConfig",
    "BrokerExtension",
    "BrokerTimeouts",
    "Connect",
    "Delivery",
    "FileConfig",
    "Frame",
    "HeaderBlock",
    "Invalid",
    "Match",
    "Parser",
    "Permissions",
    "Ping",
    "Pong",
    "Pub",
    "Sub",
    "SubjectPermission",
    "SubjectTrie",
    "TLSConfig",
    "Unsub",
    "User",
    "decode_headers",
    "encode_headers",
    "is_literal_subject",
    "is_valid_subject",
    "load_config_file",
    "parse_conf",
    "render_conf",
    "subject_matches",
]
