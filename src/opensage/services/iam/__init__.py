"""IAM users, roles and access keys, STS sessions, and the credentials SigV4 checks against."""

from opensage.services.iam.principal import Credential, Principal
from opensage.services.iam.service import IamService, RootCredentials

__all__ = ["Credential", "IamService", "Principal", "RootCredentials"]
