from channels.generic.websocket import AsyncWebsocketConsumer

# Which release answers: a redeploy changes it.
RELEASE = "chat v1"
GROUP = "broadcast"


class EchoConsumer(AsyncWebsocketConsumer):
    """Sends back each text message, naming the release that answered."""

    async def receive(self, text_data=None, bytes_data=None):
        await self.send(text_data=f"{RELEASE}: {text_data}")


class BroadcastConsumer(AsyncWebsocketConsumer):
    """Joins the broadcast group: what `manage broadcast TEXT` sends arrives here."""

    async def connect(self):
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def chat_message(self, event):
        await self.send(text_data=event["text"])
