/* unitdeck's service worker, only for notifications: phones show a page's notifications
   through one. A tap opens the page of the run it is about. Nothing is cached.
   Registered by app.js when notifications are turned on. */
self.addEventListener('notificationclick', e => {
  e.notification.close();
  const url = (e.notification.data && e.notification.data.url) || new URL('..', self.location.href).href;
  e.waitUntil(self.clients.openWindow(url));
});
