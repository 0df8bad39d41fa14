// The seed's RabbitMQ work-queue consumer: durable queue, prefetch 1 for
// fair dispatch, manual ack once the task's dots (one second each) are
// done. Addresses and names from the environment: AMQP_URL, QUEUE.
const amqp = require('amqplib/callback_api');

const url = process.env.AMQP_URL || 'amqp://localhost';
const queue = process.env.QUEUE || 'task_queue';

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
    channel.prefetch(1);

    console.log(" [*] Waiting for messages in %s. To exit press CTRL+C", queue);

    channel.consume(queue, (msg) => {
      const secs = msg.content.toString().split('.').length - 1;

      console.log(" [x] Received %s", msg.content.toString());
      setTimeout(() => {
        console.log(" [x] Done");
        channel.ack(msg);
      }, secs * 1000);
    }, {
      noAck: false
    });
  });
});
