// Package mem is busline's in-process broker, registered for mem:// URLs.
// It is the embedded default: examples and tests run on it with no broker
// installed, and it behaves like the real adapters in everything but
// durability, so that code tested on it runs unchanged on RabbitMQ, Kafka
// or Redis.
//
// # URLs
//
//	mem://                the process-wide default broker, Named("")
//	mem://orders          the process-wide broker Named("orders")
//	mem://?max_message_bytes=65536
//
// Publishers and subscribers opened with the same host share one broker.
// The only parameter is max_message_bytes (default 1 MiB); any other is an
// error.
//
// # Delivery Semantics
//
// Publish copies the message to each group and broadcast subscription of
// the topic; a topic with none drops it, as pub/sub does (PublishCount
// tells how many received it). A group's queue is created by its first
// Subscribe and keeps collecting messages while no member runs, for as long
// as the process lives. Members and workers of a group take messages in
// publish order, passing over a message whose Key is already in a handler,
// so each key is handled in order and never concurrently. A message whose
// handling is abandoned (shutdown during a retry wait) goes back to the
// head of its queue, flagged as redelivered. Dead letters are published to
// the dead letter topic and also kept by the broker (TakeDeadLetters), so
// none is lost for want of a subscriber. Nothing survives the process:
// delivery is at-least-once within it. Queues are unbounded; a group nobody
// consumes grows without limit.
//
// # As
//
// Publisher.As and Subscriber.As accept a **Broker. Received messages have
// no native value: Message.As returns false.
package mem
