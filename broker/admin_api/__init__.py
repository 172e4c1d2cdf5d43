"""The admin API (``/_broker/admin/v1``): organisations, accounts, roles, the audit log, rooms,
content reports, the effective policy, organisations' image packs and usage statistics.

Callers authenticate with an ordinary access token; what they may do is decided by
:mod:`broker.admin.permissions` from the roles they hold, inside each service call (so a
refusal is recorded in the audit log like every action).  Errors are Matrix-shaped; creations
answer 201, everything else 200.  The reference is docs/api/broker-admin.openapi.yaml.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from broker.admin.policy_document import PolicyDocument
    from broker.admin.reports import AdminReports
    from broker.admin.rooms import AdminRooms
    from broker.admin.services import AdminServices
    from broker.admin.statistics import StatisticsReport
    from broker.http.endpoint import Endpoints
    from broker.image_packs import ImagePacks

ADMIN_PREFIX = "/_broker/admin/v1"


def admin_endpoints(admin: AdminServices, rooms: AdminRooms, reports: AdminReports,
                    policy: PolicyDocument, packs: ImagePacks, statistics: StatisticsReport
                    ) -> list[Endpoints]:
    from broker.admin_api.audit import AuditEndpoints
    from broker.admin_api.image_packs import ImagePackEndpoints
    from broker.admin_api.organisations import OrganisationEndpoints
    from broker.admin_api.policy import PolicyEndpoints
    from broker.admin_api.reports import ReportEndpoints
    from broker.admin_api.roles import RoleEndpoints
    from broker.admin_api.rooms import RoomEndpoints
    from broker.admin_api.statistics import StatisticsEndpoints
    from broker.admin_api.users import UserEndpoints
    from broker.admin_api.verification_requests import VerificationRequestEndpoints

    return [
        OrganisationEndpoints(admin.organisations, admin.audit),
        RoleEndpoints(admin.roles, admin.audit),
        AuditEndpoints(admin.audit_reader, admin.audit),
        UserEndpoints(admin.accounts, admin.verifications, admin.audit),
        VerificationRequestEndpoints(admin.verification_queue, admin.audit),
        RoomEndpoints(rooms, admin.audit),
        ReportEndpoints(reports, admin.audit),
        PolicyEndpoints(policy, admin.audit),
        ImagePackEndpoints(packs, admin.audit),
        StatisticsEndpoints(statistics, admin.audit),
    ]
