"""Advertiser.members gets a through model, Membership, on the table Django made for the
plain many-to-many field (ads_advertiser_members): existing memberships stay as they are
and become members; the role column is the only change to the database."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('ads', '0002_drafting_and_review'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Membership',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('advertiser', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to='ads.advertiser')),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='advertiser_memberships', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'ads_advertiser_members',
                        'ordering': ['advertiser', 'user'],
                        'unique_together': {('advertiser', 'user')},
                    },
                ),
                migrations.AlterField(
                    model_name='advertiser',
                    name='members',
                    field=models.ManyToManyField(blank=True, related_name='advertisers', through='ads.Membership', to=settings.AUTH_USER_MODEL),
                ),
            ],
            database_operations=[],
        ),
        migrations.AddField(
            model_name='membership',
            name='role',
            field=models.CharField(choices=[('member', 'Member'), ('admin', 'Admin')], default='member', max_length=16),
        ),
    ]
