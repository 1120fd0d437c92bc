"""Settings: DeviceInformation, UserInformation per version, unsupported
properties, several properties in one request, bad requests."""
from __future__ import annotations

from typing import Any, Iterable

from twisted.trial.unittest import SynchronousTestCase

from easyncd.protocol.commands.settings import SettingsCommand
from easyncd.protocol.context import CommandResponse
from easyncd.testing.memory_store import MemoryStateStore
from easyncd.wbxml import Element, decode, encode
from tests.protocol.helpers import make_context, provision_device, result_of

NS = "Settings:"


def settings(*properties: Element) -> Element:
    return Element(NS + "Settings", None, properties)


def device_information(**fields: str) -> Element:
    setter = Element(NS + "Set", None, [Element(NS + k, v) for k, v in fields.items()])
    return Element(NS + "DeviceInformation", None, [setter])


def get(property_name: str, children: Iterable[Element] = ()) -> Element:
    return Element(NS + property_name, None, [Element(NS + "Get", None, children)])


class SettingsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.store: Any = MemoryStateStore()

    def run_settings(
        self, body: Element | None, version: str = "16.1", user: str = "alice",
        overrides: Iterable[str] = (),
    ) -> CommandResponse:
        ctx = make_context(self.store, "Settings", version=version, user=user,
                           config_overrides=overrides)
        response = result_of(SettingsCommand().run(ctx, body))
        if response.body is not None:
            # Whatever we answer must survive the codec.
            self.assertEqual(decode(encode(response.body)), response.body)
        return response

    def device_info(self) -> dict[str, str]:
        device = result_of(self.store.get_device("dev1"))
        assert device is not None
        return dict(device.info)

    def top_status(self, response: CommandResponse) -> str | None:
        assert response.body is not None
        return response.body.findtext(NS + "Status")

    # -- DeviceInformation -------------------------------------------------------

    def test_device_information_stored(self) -> None:
        provision_device(self.store)
        response = self.run_settings(settings(device_information(
            Model="Pixel 8", IMEI="3569", FriendlyName="Alice's phone", OS="Android 14",
            OSLanguage="English", PhoneNumber="+15551234", MobileOperator="Op",
            UserAgent="Nine/5", EnableOutboundSMS="0",
        )))
        self.assertEqual(self.top_status(response), "1")
        self.assertEqual(response.status, "1")
        assert response.body is not None
        self.assertEqual(
            response.body.findtext(NS + "DeviceInformation/" + NS + "Status"), "1")
        self.assertEqual(self.device_info(), {
            "Model": "Pixel 8", "IMEI": "3569", "FriendlyName": "Alice's phone",
            "OS": "Android 14", "OSLanguage": "English", "PhoneNumber": "+15551234",
            "MobileOperator": "Op", "UserAgent": "Nine/5", "EnableOutboundSMS": "0",
        })

    def test_device_information_registers_unknown_account(self) -> None:
        response = self.run_settings(settings(device_information(Model="iPhone")))
        self.assertEqual(self.top_status(response), "1")
        self.assertIsNotNone(result_of(self.store.get_account("dev1", "alice")))
        self.assertEqual(self.device_info(), {"Model": "iPhone"})

    def test_device_information_with_unknown_field_is_refused(self) -> None:
        provision_device(self.store)
        response = self.run_settings(settings(device_information(Model="X", Colour="red")))
        self.assertEqual(self.top_status(response), "1")
        assert response.body is not None
        self.assertEqual(
            response.body.findtext(NS + "DeviceInformation/" + NS + "Status"), "2")
        self.assertEqual(self.device_info(), {})

    def test_device_information_too_long(self) -> None:
        provision_device(self.store)
        response = self.run_settings(settings(device_information(Model="x" * 1025)))
        assert response.body is not None
        self.assertEqual(
            response.body.findtext(NS + "DeviceInformation/" + NS + "Status"), "5")

    # -- UserInformation ----------------------------------------------------------------

    def test_user_information_14_0(self) -> None:
        response = self.run_settings(settings(get("UserInformation")), version="14.0",
                                     user="alice@example.org")
        assert response.body is not None
        info = response.body.find(NS + "UserInformation")
        assert info is not None
        self.assertEqual(info.findtext(NS + "Status"), "1")
        self.assertEqual(
            [e.text for e in info.findall(
                NS + "Get/" + NS + "EmailAddresses/" + NS + "SMTPAddress")],
            ["alice@example.org"],
        )
        self.assertIsNone(info.find(NS + "Get/" + NS + "Accounts"))

    def test_user_information_16_1(self) -> None:
        response = self.run_settings(settings(get("UserInformation")), version="16.1",
                                     user="alice@example.org")
        assert response.body is not None
        account = response.body.find(
            NS + "UserInformation/" + NS + "Get/" + NS + "Accounts/" + NS + "Account")
        assert account is not None
        self.assertIsNone(account.find(NS + "AccountId"))
        self.assertEqual(account.findtext(NS + "AccountName"), "alice@example.org")
        self.assertEqual(account.findtext(NS + "EmailAddresses/" + NS + "SMTPAddress"),
                         "alice@example.org")
        self.assertEqual(account.findtext(NS + "EmailAddresses/" + NS + "PrimarySmtpAddress"),
                         "alice@example.org")
        self.assertIsNone(response.body.find(
            NS + "UserInformation/" + NS + "Get/" + NS + "EmailAddresses"))

    def test_user_information_uses_default_domain(self) -> None:
        response = self.run_settings(settings(get("UserInformation")), version="12.1",
                                     overrides=["auth.default_domain=example.net"])
        assert response.body is not None
        self.assertEqual(response.body.findtext(
            NS + "UserInformation/" + NS + "Get/" + NS + "EmailAddresses/" + NS + "SMTPAddress"),
            "alice@example.net")

    def test_user_information_without_address(self) -> None:
        response = self.run_settings(settings(get("UserInformation")), version="14.0")
        assert response.body is not None
        self.assertEqual(response.body.findtext(NS + "UserInformation/" + NS + "Status"), "1")
        self.assertIsNone(response.body.find(
            NS + "UserInformation/" + NS + "Get/" + NS + "EmailAddresses"))
        response = self.run_settings(settings(get("UserInformation")), version="16.1")
        assert response.body is not None
        account = response.body.find(
            NS + "UserInformation/" + NS + "Get/" + NS + "Accounts/" + NS + "Account")
        assert account is not None
        self.assertIsNone(account.find(NS + "EmailAddresses"))

    # -- other properties, mixed requests, errors ---------------------------------------

    def test_mixed_request_answers_in_order(self) -> None:
        provision_device(self.store)
        oof = get("Oof", [Element(NS + "BodyType", "Text")])
        password = Element(NS + "DevicePassword", None, [
            Element(NS + "Set", None, [Element(NS + "Password", "1234")])])
        body = settings(oof, device_information(Model="M"), get("UserInformation"),
                        password, get("RightsManagementInformation"))
        response = self.run_settings(body, user="alice@example.org")
        assert response.body is not None
        self.assertEqual(
            [c.tag for c in response.body.children],
            [NS + "Status", NS + "Oof", NS + "DeviceInformation", NS + "UserInformation",
             NS + "DevicePassword", NS + "RightsManagementInformation"],
        )
        self.assertEqual(self.top_status(response), "1")
        statuses = {c.tag: c.findtext(NS + "Status") for c in response.body.children[1:]}
        self.assertEqual(statuses, {
            NS + "Oof": "3",  # not offered: no success is faked
            NS + "DeviceInformation": "1",
            NS + "UserInformation": "1",
            NS + "DevicePassword": "7",  # recovery passwords are not kept
            NS + "RightsManagementInformation": "1",
        })
        rm = response.body.find(NS + "RightsManagementInformation/" + NS + "Get")
        assert rm is not None
        self.assertEqual([c.tag for c in rm.children],
                         ["RightsManagement:RightsManagementTemplates"])
        self.assertEqual(self.device_info(), {"Model": "M"})

    def test_rights_management_before_14_1(self) -> None:
        response = self.run_settings(settings(get("RightsManagementInformation")), version="14.0")
        assert response.body is not None
        self.assertEqual(
            response.body.findtext(NS + "RightsManagementInformation/" + NS + "Status"), "2")

    def test_unknown_property_is_a_protocol_error(self) -> None:
        provision_device(self.store)
        body = settings(device_information(Model="M"), Element(NS + "Status", "1"))
        response = self.run_settings(body)
        self.assertEqual(self.top_status(response), "2")
        self.assertEqual(response.status, "2")
        assert response.body is not None
        self.assertEqual([c.tag for c in response.body.children], [NS + "Status"])
        # Nothing of the request was carried out.
        self.assertEqual(self.device_info(), {})

    def test_wrong_root_and_missing_body(self) -> None:
        wrong = self.run_settings(Element("FolderHierarchy:FolderSync"))
        self.assertEqual(self.top_status(wrong), "2")
        self.assertEqual(self.top_status(self.run_settings(None)), "2")

    def test_malformed_properties(self) -> None:
        provision_device(self.store)
        body = settings(
            Element(NS + "DeviceInformation"),
            Element(NS + "UserInformation", None, [Element(NS + "Set")]),
            Element(NS + "Oof"),
            Element(NS + "DevicePassword", None, [Element(NS + "Set")]),
        )
        response = self.run_settings(body)
        self.assertEqual(self.top_status(response), "1")
        assert response.body is not None
        self.assertEqual([c.findtext(NS + "Status") for c in response.body.children[1:]],
                         ["2", "2", "2", "2"])

    def test_empty_settings(self) -> None:
        response = self.run_settings(settings())
        self.assertEqual(self.top_status(response), "1")
        assert response.body is not None
        self.assertEqual(len(response.body.children), 1)
