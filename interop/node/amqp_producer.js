// The seed's RabbitMQ work-queue producer: one persistent message on a
// durable queue. Only the addresses and names come from the environment
// (AMQP_URL, QUEUE); the message is the command line, as with the seed's
// default 'Hello World!'.
const amqp = require('amqplib/callback_api');

const url = process.env.AMQP_URL || 'amqp://localhost';
const queue = process.env.QUEUE || 'task_queue';
const msg = process.argv.slice(2).join(' ') || 'Hello World!';

amqp.connect(url, (error0, connection) => {
  if (error0) {
    throw error0;
  }
  connection.createChannel((error1, channel) => {
    if (error1) {
      throw error1;
    }
    channel.assertQueue(queue, {
      durable: true
    });
    channel.sendToQueue(queue, Buffer.from(msg), {
      persistent: true
    });
    console.log(" [x] Sent '%s'", msg);
  });

  // As in the seed: close the connection (which flushes what was sent)
  // after a short delay.
  setTimeout(() => {
    connection.close();
    process.exit(0);
  }, 500);
});
