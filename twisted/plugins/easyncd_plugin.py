"""twistd plugin declaration: ``twistd -n easyncd -f /etc/easyncd/easyncd.conf``."""
from twisted.application.service import ServiceMaker

easyncd = ServiceMaker(
    "easyncd", "easyncd.tap", "Exchange ActiveSync server", "easyncd"
)
