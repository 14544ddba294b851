/** Built-in tools of a call (end_call, transfer_call) and configured webhook tools. */
export { endCallTool, END_CALL_TOOL, type EndCallToolOptions } from './endCall';
export { transferCallTool, TRANSFER_CALL_TOOL, type TransferCallToolOptions } from './transferCall';
export { webhookTool, callWebhook, WebhookError, type WebhookToolOptions, type WebhookResponse } from './webhook';
export { within, type ToolHost } from './host';
