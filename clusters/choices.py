"""Choice lists, named as ipvsadm / ldirectord / keepalived name them so imports map one to one."""

from django.db import models


class Protocol(models.TextChoices):
    TCP = "tcp", "TCP"
    UDP = "udp", "UDP"
    SCTP = "sctp", "SCTP"
    FWMARK = "fwmark", "Firewall mark"


class Family(models.IntegerChoices):
    IPV4 = 4, "IPv4"
    IPV6 = 6, "IPv6"


class Scheduler(models.TextChoices):
    """Every scheduler the Linux 6.x kernel ships (ip_vs_<name>.ko)."""

    RR = "rr", "Round robin"
    WRR = "wrr", "Weighted round robin"
    LC = "lc", "Least connection"
    WLC = "wlc", "Weighted least connection"
    LBLC = "lblc", "Locality-based least connection"
    LBLCR = "lblcr", "Locality-based least connection with replication"
    DH = "dh", "Destination hashing"
    SH = "sh", "Source hashing"
    SED = "sed", "Shortest expected delay"
    NQ = "nq", "Never queue"
    FO = "fo", "Weighted failover"
    OVF = "ovf", "Weighted overflow"
    MH = "mh", "Maglev hashing"
    TWOS = "twos", "Weighted random twos choice"


class SchedFlag(models.TextChoices):
    SH_FALLBACK = "sh-fallback", "sh-fallback"
    SH_PORT = "sh-port", "sh-port"
    MH_FALLBACK = "mh-fallback", "mh-fallback"
    MH_PORT = "mh-port", "mh-port"
    OPS = "ops", "One-packet scheduling (UDP)"


class Forwarding(models.TextChoices):
    MASQ = "masq", "NAT (masq)"
    GATE = "gate", "Direct routing (gate)"
    IPIP = "ipip", "Tunnel (ipip)"


class AdminState(models.TextChoices):
    ACTIVE = "active", "Active"
    DRAINING = "draining", "Draining"
    MAINTENANCE = "maintenance", "Maintenance"


class AfterDrain(models.TextChoices):
    """What a drain does by itself once no connections are left."""

    NOTHING = "", "Stay drained"
    MAINTENANCE = "maintenance", "Maintenance when drained"
    REMOVE = "remove", "Remove when drained"


class Health(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    UP = "up", "Up"
    DOWN = "down", "Down"


class AgentState(models.TextChoices):
    UNKNOWN = "unknown", "Never seen"
    UP = "up", "Up"
    STALE = "stale", "Stale"
    DOWN = "down", "Down"


class FallbackRule(models.TextChoices):
    LDIRECTORD = "ldirectord", "ldirectord: while no real server passes its check"
    KEEPALIVED = "keepalived", "keepalived: instead of the live servers while their weight is below quorum"


class CheckType(models.TextChoices):
    NEGOTIATE = "negotiate", "negotiate"
    CONNECT = "connect", "connect"
    PING = "ping", "ping"
    EXTERNAL = "external", "external"
    ON = "on", "on (always up)"
    OFF = "off", "off (always down)"


class CheckService(models.TextChoices):
    NONE = "none", "none"
    HTTP = "http", "http"
    HTTPS = "https", "https"
    HTTP_PROXY = "http_proxy", "http_proxy"
    FTP = "ftp", "ftp"
    SMTP = "smtp", "smtp"
    POP = "pop", "pop"
    POPS = "pops", "pops"
    IMAP = "imap", "imap"
    IMAPS = "imaps", "imaps"
    LDAP = "ldap", "ldap"
    NNTP = "nntp", "nntp"
    DNS = "dns", "dns"
    MYSQL = "mysql", "mysql"
    PGSQL = "pgsql", "pgsql"
    SIP = "sip", "sip"
    RADIUS = "radius", "radius"
    SIMPLETCP = "simpletcp", "simpletcp"


class HttpMethod(models.TextChoices):
    GET = "GET", "GET"
    HEAD = "HEAD", "HEAD"


class EventKind(models.TextChoices):
    CHECK = "check", "Health check"
    APPLY = "apply", "Apply"
    USER = "user", "User action"
    AGENT = "agent", "Agent"
    DRIFT = "drift", "Drift"
    IMPORT = "import", "Import"


class Level(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPLIED = "applied", "Applied"
    FAILED = "failed", "Failed"
